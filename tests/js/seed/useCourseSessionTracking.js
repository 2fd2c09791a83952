// Copied verbatim from shared/seed/real-time-active-session-tracking.md ("React Hook for Course
// Session Tracking"). Do not edit: lib/seed-hook.mjs runs this text unchanged, with a minimal
// stand-in for React's useState/useEffect and the server URL put in place of localhost:4002.
import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';

const useCourseSessionTracking = (courseId, authToken) => {
    const [socket, setSocket] = useState(null);
    const [activeSessions, setActiveSessions] = useState([]);
    const [isConnected, setIsConnected] = useState(false);

    useEffect(() => {
        if (!courseId || !authToken) return;

        // Initialize socket connection
        const newSocket = io('http://localhost:4002', {
            auth: {
                token: authToken
            }
        });

        newSocket.on('connect', () => {
            setIsConnected(true);
            // Subscribe to course updates
            newSocket.emit('subscribeToCourse', {
                course_id: courseId
            });
        });

        newSocket.on('disconnect', () => {
            setIsConnected(false);
        });

        // Listen for session events
        newSocket.on('courseSessionStarted', (data) => {
            console.log('Session started:', data);
            // Handle session start (e.g., show notification)
        });

        newSocket.on('courseSessionEnded', (data) => {
            console.log('Session ended:', data);
            // Handle session end (e.g., show notification)
        });

        newSocket.on('activeSessionsData', (data) => {
            if (data.course_id === courseId) {
                setActiveSessions(data.activeSessions);
            }
        });

        newSocket.on('activeSessionsError', (error) => {
            console.error('Error:', error.message);
        });

        setSocket(newSocket);

        // Cleanup
        return () => {
            if (newSocket) {
                newSocket.emit('unsubscribeFromCourse', {
                    course_id: courseId
                });
                newSocket.disconnect();
            }
        };
    }, [courseId, authToken]);

    return {
        socket,
        activeSessions,
        isConnected,
        hasActiveSessions: activeSessions.length > 0
    };
};

export default useCourseSessionTracking;
