import { useSession } from '../session.js';
import useFetched from '../hooks/useFetched.js';
import { linkHandler, rosterPath } from '../router.js';
import useCourseSessionTracking from '../hooks/useCourseSessionTracking.js';
import PageHeading from './PageHeading.jsx';
import StudentView from './StudentView.jsx';
import TeacherView from './TeacherView.jsx';
import TermPanel from './term/TermPanel.jsx';

export default function CoursePage({ courseId }) {
  const { token } = useSession();
  const { data: course, error } = useFetched(`/api/courses/${encodeURIComponent(courseId)}`);

  // One socket per course page, opened once the course is known to exist.
  const tracking = useCourseSessionTracking(course ? course.id : null, token);

  if (error) {
    const missing = error.status === 404;
    return (
      <section aria-labelledby="course-title">
        <PageHeading id="course-title" title={missing ? 'Course not found' : 'Course unavailable'} />
        <p className="error" role="alert">
          {missing ? 'There is no such course, or you are not a member of it.' : error.detail}
        </p>
        <p><a href="/" onClick={linkHandler('/')}>Back to your courses</a></p>
      </section>
    );
  }
  if (!course) return <p role="status">Loading course…</p>;

  const manages = course.my_role === 'teacher' || course.my_role === 'admin';
  return (
    <section aria-labelledby="course-title" className="course-page">
      <p className="breadcrumb"><a href="/" onClick={linkHandler('/')}>← Your courses</a></p>
      <PageHeading id="course-title" title={`${course.code}: ${course.title}`} />
      <p className="hint">
        Teacher: {course.teacher_name || course.teacher_id}
        {manages ? ' · you manage this course' : ''}
        {course.archived_at ? ' · archived: no new session, hidden from its students' : ''}
      </p>
      {manages && (
        <p className="roster-link">
          <a href={rosterPath(course.id)} onClick={linkHandler(rosterPath(course.id))}>
            Roster, join link and course settings →
          </a>
        </p>
      )}
      {manages ? <TeacherView course={course} tracking={tracking} /> : <StudentView course={course} tracking={tracking} />}
      <TermPanel course={course} manages={manages} tracking={tracking} />
    </section>
  );
}
